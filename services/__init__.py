"""One package per klik service, each the same shape (see ARCHITECTURE.md § Layout)."""
