"""Proto <-> domain conversion, one module per resource; conversion translates, the domain validates, and every
violation carries its proto field path."""
