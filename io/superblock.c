/* placeholder */
typedef int sl_placeholder_superblock;
