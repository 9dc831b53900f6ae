"""Sessions: isolated stubs, scenario state and journal per session, kept behind a narrow store interface."""
