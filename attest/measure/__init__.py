"""Measurement computation: SNP launch MEASUREMENT (and TDX MRTD) from build artifacts."""
