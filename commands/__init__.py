"""Pure cores of the /lead command: parsing, validation, hopper caveats and Block Kit rendering. No I/O."""
