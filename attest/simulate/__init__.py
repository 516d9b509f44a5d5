"""Simulated hardware: byte-exact evidence signed by generated test roots, and fake vendor
services on 127.0.0.1. For the demo and end-to-end flows, never instead of real vectors."""
