"""The vault: master key ring, envelope encryption of credential secrets, and rewrap."""
