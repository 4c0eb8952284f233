"""Token revocation and introspection endpoints."""
