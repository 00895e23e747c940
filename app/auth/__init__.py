"""Authentication and authorization: SMART Backend Services tokens and scope checks."""
