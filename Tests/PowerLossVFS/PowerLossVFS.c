// A SQLite VFS that simulates power loss, for the durability tests.
//
// It wraps the default VFS. Writes to a database, its WAL and its rollback journal do not reach
// the file: they wait in this process's memory, in order, until SQLite syncs that file
// (xSync), which writes them to the file and then syncs it. Every handle on the same path sees
// the same waiting writes, as every connection sees the operating system's page cache; reads,
// sizes and truncations follow them. Nothing else ever writes them out: when the process dies
// (SIGKILL), whatever was not synced is gone, exactly as after a power cut, and the file holds
// only what SQLite made durable. Other files (temporary files) pass through.
//
// Locks and the WAL index (shared memory) pass through to the real files: after a power cut
// the index is rebuilt from the WAL, which SQLite does on the next open whatever the index
// file holds. Memory mapping is off for these files (I/O methods version 2), so every read
// goes through xRead.

#include "PowerLossVFS.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

typedef struct Operation {
    int isTruncate;
    sqlite3_int64 offset;  // a write's offset, or a truncation's new size
    int amount;
    unsigned char *data;
    struct Operation *next;
} Operation;

// The waiting writes of one path, shared by every handle on it.
typedef struct Shadow {
    char *path;
    Operation *head;
    Operation *tail;
    struct Shadow *next;
} Shadow;

typedef struct File {
    sqlite3_file base;
    Shadow *shadow;  // NULL: a pass-through file
    sqlite3_file *real;
} File;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Shadow *shadows = NULL;
static sqlite3_vfs *underlying = NULL;
static sqlite3_vfs vfs;

static Shadow *shadowFor(const char *path) {
    for (Shadow *shadow = shadows; shadow; shadow = shadow->next) {
        if (strcmp(shadow->path, path) == 0) return shadow;
    }
    Shadow *shadow = calloc(1, sizeof(Shadow));
    if (!shadow) return NULL;
    shadow->path = strdup(path);
    if (!shadow->path) {
        free(shadow);
        return NULL;
    }
    shadow->next = shadows;
    shadows = shadow;
    return shadow;
}

static void dropOperations(Shadow *shadow) {
    Operation *operation = shadow->head;
    while (operation) {
        Operation *next = operation->next;
        free(operation->data);
        free(operation);
        operation = next;
    }
    shadow->head = shadow->tail = NULL;
}

static int append(Shadow *shadow, int isTruncate, sqlite3_int64 offset, const void *data, int amount) {
    Operation *operation = calloc(1, sizeof(Operation));
    if (!operation) return SQLITE_IOERR_NOMEM;
    operation->isTruncate = isTruncate;
    operation->offset = offset;
    operation->amount = amount;
    if (!isTruncate) {
        operation->data = malloc((size_t)amount);
        if (!operation->data) {
            free(operation);
            return SQLITE_IOERR_NOMEM;
        }
        memcpy(operation->data, data, (size_t)amount);
    }
    if (shadow->tail) {
        shadow->tail->next = operation;
    } else {
        shadow->head = operation;
    }
    shadow->tail = operation;
    return SQLITE_OK;
}

// The file's size with the waiting operations applied.
static int logicalSize(File *file, sqlite3_int64 *size) {
    int rc = file->real->pMethods->xFileSize(file->real, size);
    if (rc != SQLITE_OK) return rc;
    for (Operation *operation = file->shadow->head; operation; operation = operation->next) {
        if (operation->isTruncate) {
            *size = operation->offset;
        } else if (operation->offset + operation->amount > *size) {
            *size = operation->offset + operation->amount;
        }
    }
    return SQLITE_OK;
}

static int xClose(sqlite3_file *base) {
    File *file = (File *)base;
    // The waiting writes stay with the path: a later handle sees them, as the page cache would.
    return file->real->pMethods->xClose(file->real);
}

static int xRead(sqlite3_file *base, void *buffer, int amount, sqlite3_int64 offset) {
    File *file = (File *)base;
    if (!file->shadow) return file->real->pMethods->xRead(file->real, buffer, amount, offset);
    pthread_mutex_lock(&lock);
    int rc = file->real->pMethods->xRead(file->real, buffer, amount, offset);
    if (rc == SQLITE_IOERR_SHORT_READ) rc = SQLITE_OK;  // the rest is zero-filled
    if (rc != SQLITE_OK) {
        pthread_mutex_unlock(&lock);
        return rc;
    }
    unsigned char *bytes = buffer;
    sqlite3_int64 end = offset + amount;
    for (Operation *operation = file->shadow->head; operation; operation = operation->next) {
        if (operation->isTruncate) {
            if (operation->offset < end) {
                sqlite3_int64 from = operation->offset > offset ? operation->offset : offset;
                memset(bytes + (from - offset), 0, (size_t)(end - from));
            }
            continue;
        }
        sqlite3_int64 from = operation->offset > offset ? operation->offset : offset;
        sqlite3_int64 to = operation->offset + operation->amount < end ? operation->offset + operation->amount : end;
        if (from < to) memcpy(bytes + (from - offset), operation->data + (from - operation->offset), (size_t)(to - from));
    }
    sqlite3_int64 size = 0;
    rc = logicalSize(file, &size);
    pthread_mutex_unlock(&lock);
    if (rc != SQLITE_OK) return rc;
    if (end > size) {
        sqlite3_int64 from = size > offset ? size : offset;
        memset(bytes + (from - offset), 0, (size_t)(end - from));
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

static int xWrite(sqlite3_file *base, const void *buffer, int amount, sqlite3_int64 offset) {
    File *file = (File *)base;
    if (!file->shadow) return file->real->pMethods->xWrite(file->real, buffer, amount, offset);
    pthread_mutex_lock(&lock);
    int rc = append(file->shadow, 0, offset, buffer, amount);
    pthread_mutex_unlock(&lock);
    return rc;
}

static int xTruncate(sqlite3_file *base, sqlite3_int64 size) {
    File *file = (File *)base;
    if (!file->shadow) return file->real->pMethods->xTruncate(file->real, size);
    pthread_mutex_lock(&lock);
    int rc = append(file->shadow, 1, size, NULL, 0);
    pthread_mutex_unlock(&lock);
    return rc;
}

static int xSync(sqlite3_file *base, int flags) {
    File *file = (File *)base;
    if (file->shadow) {
        pthread_mutex_lock(&lock);
        int rc = SQLITE_OK;
        for (Operation *operation = file->shadow->head; operation && rc == SQLITE_OK; operation = operation->next) {
            if (operation->isTruncate) {
                rc = file->real->pMethods->xTruncate(file->real, operation->offset);
            } else {
                rc = file->real->pMethods->xWrite(file->real, operation->data, operation->amount, operation->offset);
            }
        }
        if (rc == SQLITE_OK) dropOperations(file->shadow);
        pthread_mutex_unlock(&lock);
        if (rc != SQLITE_OK) return rc;
    }
    return file->real->pMethods->xSync(file->real, flags);
}

static int xFileSize(sqlite3_file *base, sqlite3_int64 *size) {
    File *file = (File *)base;
    if (!file->shadow) return file->real->pMethods->xFileSize(file->real, size);
    pthread_mutex_lock(&lock);
    int rc = logicalSize(file, size);
    pthread_mutex_unlock(&lock);
    return rc;
}

static int xLock(sqlite3_file *base, int level) { return ((File *)base)->real->pMethods->xLock(((File *)base)->real, level); }
static int xUnlock(sqlite3_file *base, int level) { return ((File *)base)->real->pMethods->xUnlock(((File *)base)->real, level); }
static int xCheckReservedLock(sqlite3_file *base, int *out) {
    return ((File *)base)->real->pMethods->xCheckReservedLock(((File *)base)->real, out);
}

static int xFileControl(sqlite3_file *base, int op, void *argument) {
    File *file = (File *)base;
    // Size hints and chunk sizes would grow the real file ahead of the waiting writes.
    if (file->shadow && (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_CHUNK_SIZE)) return SQLITE_OK;
    // Memory mapping reads the real file behind the waiting writes.
    if (op == SQLITE_FCNTL_MMAP_SIZE) {
        if (argument) *(sqlite3_int64 *)argument = 0;
        return SQLITE_OK;
    }
    return file->real->pMethods->xFileControl(file->real, op, argument);
}

static int xSectorSize(sqlite3_file *base) { return ((File *)base)->real->pMethods->xSectorSize(((File *)base)->real); }
static int xDeviceCharacteristics(sqlite3_file *base) {
    return ((File *)base)->real->pMethods->xDeviceCharacteristics(((File *)base)->real);
}
static int xShmMap(sqlite3_file *base, int page, int size, int extend, void volatile **out) {
    return ((File *)base)->real->pMethods->xShmMap(((File *)base)->real, page, size, extend, out);
}
static int xShmLock(sqlite3_file *base, int offset, int n, int flags) {
    return ((File *)base)->real->pMethods->xShmLock(((File *)base)->real, offset, n, flags);
}
static void xShmBarrier(sqlite3_file *base) { ((File *)base)->real->pMethods->xShmBarrier(((File *)base)->real); }
static int xShmUnmap(sqlite3_file *base, int deleteFlag) {
    return ((File *)base)->real->pMethods->xShmUnmap(((File *)base)->real, deleteFlag);
}

static const sqlite3_io_methods methods = {
    2, xClose, xRead, xWrite, xTruncate, xSync, xFileSize, xLock, xUnlock, xCheckReservedLock, xFileControl,
    xSectorSize, xDeviceCharacteristics, xShmMap, xShmLock, xShmBarrier, xShmUnmap, NULL, NULL,
};

static int xOpen(sqlite3_vfs *self, const char *name, sqlite3_file *base, int flags, int *outFlags) {
    (void)self;
    File *file = (File *)base;
    file->real = (sqlite3_file *)&file[1];
    file->shadow = NULL;
    int rc = underlying->xOpen(underlying, name, file->real, flags, outFlags);
    if (rc != SQLITE_OK) {
        base->pMethods = NULL;
        return rc;
    }
    if (name && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL))) {
        pthread_mutex_lock(&lock);
        file->shadow = shadowFor(name);
        pthread_mutex_unlock(&lock);
        if (!file->shadow) {
            file->real->pMethods->xClose(file->real);
            base->pMethods = NULL;
            return SQLITE_IOERR_NOMEM;
        }
    }
    base->pMethods = &methods;
    return SQLITE_OK;
}

static int xDelete(sqlite3_vfs *self, const char *name, int syncDirectory) {
    (void)self;
    pthread_mutex_lock(&lock);
    for (Shadow *shadow = shadows; shadow; shadow = shadow->next) {
        if (strcmp(shadow->path, name) == 0) dropOperations(shadow);
    }
    pthread_mutex_unlock(&lock);
    return underlying->xDelete(underlying, name, syncDirectory);
}

int weft_power_loss_vfs_register(void) {
    if (underlying) return SQLITE_OK;
    sqlite3_vfs *found = sqlite3_vfs_find(NULL);
    if (!found) return SQLITE_ERROR;
    underlying = found;
    vfs = *found;
    vfs.zName = "weft-power-loss";
    vfs.szOsFile = (int)sizeof(File) + found->szOsFile;
    vfs.pNext = NULL;
    vfs.xOpen = xOpen;
    vfs.xDelete = xDelete;
    return sqlite3_vfs_register(&vfs, 1);
}
