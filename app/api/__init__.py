"""HTTP routers: they translate HTTP to domain calls and back, nothing more."""
