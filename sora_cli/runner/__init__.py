"""The runner: the loop, one job's steps, pacing, the process and its spawning."""
