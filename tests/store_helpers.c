/* placeholder */
typedef int sl_placeholder_store_helpers;
