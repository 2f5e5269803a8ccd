"""services.tiering: tier qualification, upgrades and downgrades, tier.changed events."""
