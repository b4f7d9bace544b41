"""Sans-IO protocol cores shared by the runtimes (the failure detector, ...)."""
