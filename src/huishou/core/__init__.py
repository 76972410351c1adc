"""The platform under every room: errors, vocabulary, settings, files, engines, plots, paths, tracking."""
