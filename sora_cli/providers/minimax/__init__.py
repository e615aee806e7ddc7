"""MiniMax Hailuo (video generation API): its adapter."""
