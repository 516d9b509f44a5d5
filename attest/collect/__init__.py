"""Evidence collection on a node: configfs-tsm, /dev/sev-guest, /dev/tdx_guest, NVML."""
