// libarchive (system library, Debian package libarchive-dev): reading and writing tar/zip archives with
// gzip/zstd compression for the package stage and `qlora unpack`/`qlora verify`.
#include <archive.h>
#include <archive_entry.h>
