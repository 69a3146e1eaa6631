"""cgroups through the cgroupfs file system."""
