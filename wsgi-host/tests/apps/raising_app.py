raise ValueError("module-level failure")
