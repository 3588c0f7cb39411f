// A SQLite VFS for tests that simulates power loss: see PowerLossVFS.c.
#ifndef WEFT_POWER_LOSS_VFS_H
#define WEFT_POWER_LOSS_VFS_H

/// Registers the "weft-power-loss" VFS as the process's default VFS. Returns a SQLite result
/// code (0 on success). Call it before opening any database; calling it again does nothing.
int weft_power_loss_vfs_register(void);

#endif
