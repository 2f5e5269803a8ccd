"""services.notify: welcome, reminders, tier and points news; email and Web Push."""
