"""systemd through its D-Bus API: transient units for the systemd cgroup driver, sd_notify for the service."""
