"""dbops' surfaces: Slack adapter, console, CLI and scheduler jobs, over ``commands``."""
