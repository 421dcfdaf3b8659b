"""DVC stage entry points: `python -m stages.<name>`, one thin script per stage."""
