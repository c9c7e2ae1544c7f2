// SHA-256 from OpenSSL's libcrypto, loaded on first use. Linking libcrypto directly costs
// every launch its relocations and initialisation (~0.5 ms), and most runs never need a
// digest (only reports and `corral explain` do).
#include "corral_launch.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

typedef unsigned char *(*sha256_fn)(const unsigned char *data, size_t count, unsigned char *digest);

static sha256_fn sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void load_sha256(void) {
    static const char *const names[] = {"libcrypto.so.3", "libcrypto.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (library && (sha256 = (sha256_fn)dlsym(library, "SHA256"))) return;
    }
}

int corral_sha256(const void *data, size_t count, uint8_t digest[32]) {
    pthread_once(&sha256_once, load_sha256);
    if (!sha256) return -1;
    sha256(data, count, digest);
    return 0;
}
