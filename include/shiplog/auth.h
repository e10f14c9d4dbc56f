/* Frame authentication with a pre-shared key: a keyed BLAKE2b (libsodium's
 * crypto_generichash, 32-byte key, 16-byte output) over the bytes
 * sl_frame_mac_region reports, stored in the frame's SL_FRAME_MAC_LEN-byte
 * trailer. Optional: a cluster without a key file sends frames without
 * SL_FRAME_F_MAC. The MAC covers the header (CRC included) and the body, so
 * a frame that verifies came from a holder of the key, unchanged. There is
 * no replay protection here: the protocol's epochs, positions and sequence
 * numbers make a replayed frame a duplicate it already ignores. */
#ifndef SHIPLOG_AUTH_H
#define SHIPLOG_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define SL_AUTH_KEY_LEN 32

struct sl_auth {
	uint8_t key[SL_AUTH_KEY_LEN];
	int loaded; /* 1 once a key is in place */
};

/* Read the key file at `path`: exactly 32 raw bytes, or 64 hex digits with
 * an optional trailing newline. Refuses any other size, non-hex digits, a
 * file that is not a regular file, and a file the group or others may
 * access (mode & 077, like ssh's private keys): a key others can read
 * authenticates nothing. Errors name the file. 0 or -errno (-EINVAL bad
 * contents, -EPERM too open, or what open/read said). */
int sl_auth_load_key(struct sl_auth *a, const char *path);

/* Use `key` directly (tests, or a key from somewhere other than a file). */
void sl_auth_set_key(struct sl_auth *a, const uint8_t key[SL_AUTH_KEY_LEN]);

/* Wipe the key from memory. */
void sl_auth_clear(struct sl_auth *a);

/* Write the MAC of a frame built with SL_FRAME_F_MAC (its MAC trailer
 * reserved, e.g. zero) into its trailer. `len` is at least the frame's
 * length (it may be the buffer's capacity). 0, or -EINVAL when no key is
 * loaded or the buffer does not hold a whole frame with the MAC flag. */
int sl_auth_sign(const struct sl_auth *a, uint8_t *frame, size_t len);

/* Check a received frame of exactly `len` bytes: it must carry
 * SL_FRAME_F_MAC, end right after its MAC trailer, and the trailer must
 * match (compared in constant time). 0 or -EBADMSG (-EINVAL without a key).
 * The caller drops and counts frames that fail. */
int sl_auth_verify(const struct sl_auth *a, const uint8_t *frame, size_t len);

/* The MAC of the concatenation of `iov` into out: for transports that send
 * a zero-copy DATA frame as prefix + fragment and append the MAC as a third
 * segment (see sl_frame_encode_prefix). 0 or -EINVAL without a key. */
int sl_auth_mac_iov(const struct sl_auth *a, const struct iovec *iov, unsigned n, uint8_t out[16]);

#endif
