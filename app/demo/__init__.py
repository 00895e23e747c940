"""The demo payer: members, plans and providers that the Inferno fixtures use."""
