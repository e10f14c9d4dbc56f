/* Little-endian loads and stores for wire and disk formats.
 *
 * Every shiplog format is little-endian and packed at fixed offsets. These
 * helpers read and write one field at a time through memcpy, so they are
 * safe at any alignment and never alias a struct onto bytes; on x86-64 and
 * arm64 the compiler turns each into a single load or store. */
#ifndef SHIPLOG_LE_H
#define SHIPLOG_LE_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define SL_LE16(x) __builtin_bswap16(x)
#define SL_LE32(x) __builtin_bswap32(x)
#define SL_LE64(x) __builtin_bswap64(x)
#else
#define SL_LE16(x) (x)
#define SL_LE32(x) (x)
#define SL_LE64(x) (x)
#endif

static inline uint16_t sl_le16_get(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return SL_LE16(v);
}

static inline uint32_t sl_le32_get(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return SL_LE32(v);
}

static inline uint64_t sl_le64_get(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return SL_LE64(v);
}

static inline void sl_le16_put(void *p, uint16_t v)
{
	v = SL_LE16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void sl_le32_put(void *p, uint32_t v)
{
	v = SL_LE32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void sl_le64_put(void *p, uint64_t v)
{
	v = SL_LE64(v);
	memcpy(p, &v, sizeof(v));
}

#endif
