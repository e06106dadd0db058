"""dbops' surfaces over ``commands``: the Slack app (slack/), the console (console/), the command line (cli/), background jobs (jobs/).
May import commands and Slack's SDK; terminal.py shows the Block Kit wording as terminal text for the console and the CLI."""
