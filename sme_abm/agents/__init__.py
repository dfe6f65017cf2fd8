"""Agents: SMEs (column-wise), banks, guarantors, government and the central bank."""
