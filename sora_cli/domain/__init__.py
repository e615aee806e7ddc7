"""The domain: jobs, their lifecycle and validation, money, batch lines, durations. No I/O."""
