"""Run imports: agent and human runs entered from files or by agent harnesses through the API."""
