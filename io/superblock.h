/* The superblock: a file `superblock` in the log directory with two 4 KiB
 * copies, each with a sequence number and CRC32C. A write goes to the copy
 * not currently valid-and-newest, then fdatasync; a read takes the valid copy
 * with the higher sequence, so a torn write leaves the previous state. */
#ifndef SHIPLOG_IO_SUPERBLOCK_H
#define SHIPLOG_IO_SUPERBLOCK_H

#include <stdint.h>

#include "shiplog/store.h"

#define SL_SB_MAGIC	0x42534c53u /* "SLSB" little-endian */
#define SL_SB_VERSION	1
#define SL_SB_COPY_SIZE 4096
#define SL_SB_FILE	"superblock"

struct sl_sb {
	uint64_t seq; /* of the copy read or last written */
	int copy;     /* which copy (0 or 1) holds `seq` */
	uint8_t cluster_id[16];
	uint64_t stream_id;
	uint32_t node_id;
	struct sl_store_meta meta;
};

/* Encode/decode one 4 KiB copy. decode: 0, -ENODATA (all zero), -EBADMSG
 * (magic, CRC or n_epochs) or -EPROTONOSUPPORT; the message names no file. */
void sl_sb_encode(const struct sl_sb *sb, uint8_t out[SL_SB_COPY_SIZE]);
int sl_sb_decode(const uint8_t *buf, struct sl_sb *sb);

/* Create `superblock` in dirfd (O_EXCL) holding `sb` as copy 1 with seq 1 and
 * an empty copy 0, fdatasync it and the directory. */
int sl_sb_create(int dirfd, const char *dir, struct sl_sb *sb);
/* Read the newest valid copy. -ENOENT when there is no superblock file,
 * -EBADMSG when neither copy is valid; messages name the file. */
int sl_sb_read(int dirfd, const char *dir, struct sl_sb *sb);
/* Write sb (seq + 1) over the other copy and fdatasync; on success sb->seq
 * and sb->copy describe the new copy. */
int sl_sb_write(int dirfd, const char *dir, struct sl_sb *sb);

#endif
