"""The embedded default: an AWS stand-in on 127.0.0.1 and simulated traffic, for `wafsmith demo`."""
