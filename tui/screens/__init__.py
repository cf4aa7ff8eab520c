"""One screen per mode (Dashboard, Models, Logs, Chat, Settings, Connect), plus dialogs."""
