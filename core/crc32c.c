/* placeholder */
typedef int sl_placeholder_crc32c;
