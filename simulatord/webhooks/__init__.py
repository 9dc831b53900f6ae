"""Outbound webhooks: requests the daemon delivers to the code under test, signed as providers sign them."""
