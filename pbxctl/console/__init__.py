"""The web console (`pbxctl console serve`): screens for the seats of the patent — county
terminal seats' work-order inbox first (docs/console.md)."""
