"""fal (queue API): its adapter."""
