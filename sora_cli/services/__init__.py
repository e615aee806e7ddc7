"""What each command means, as functions over a `Context` returning typed values."""
