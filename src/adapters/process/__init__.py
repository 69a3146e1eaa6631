"""Running host programs (runc, conmon, CNI plugins) safely, and reaping what they leave behind."""
