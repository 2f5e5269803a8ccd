"""The analytics service: retention, programme, points and message figures of the shop."""
