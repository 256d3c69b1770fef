/* The version: ggvk_version() (the loaded library) against GGVK_VERSION_* (the header compiled against), and the
 * library the program runs against: the installed one, through its soname libggvk.so.<major>. Built twice by
 * CMakeLists.txt: against the installed CMake package (ggvk::ggvk) and against the installed pkg-config file
 * (ggvk.pc); GGVK_EXPECT_LIBDIR is the install's library directory. */
#define _GNU_SOURCE /* dlinfo, RTLD_DI_LINKMAP */
#include "test_util.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>

#ifndef GGVK_EXPECT_LIBDIR
#error "build with -DGGVK_EXPECT_LIBDIR=\"<install prefix>/lib\""
#endif

int main(void)
{
    const char *v = ggvk_version();
    CHECKF(v != NULL, "ggvk_version() returned NULL");
    CHECKF(v == ggvk_version(), "ggvk_version() is not one static string");

    char expect[64];
    snprintf(expect, sizeof expect, "%u.%u.%u", (unsigned)GGVK_VERSION_MAJOR, (unsigned)GGVK_VERSION_MINOR,
             (unsigned)GGVK_VERSION_PATCH);
    CHECKF(strcmp(v, expect) == 0, "library version \"%s\" != header version \"%s\"", v, expect);

    /* The executable's DT_NEEDED is the soname, so the library is loaded under that name ... */
    char soname[64];
    snprintf(soname, sizeof soname, "libggvk.so.%u", (unsigned)GGVK_VERSION_MAJOR);
    void *self = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
    CHECKF(self != NULL, "%s is not loaded under its soname: %s", soname, dlerror());
    struct link_map *map = NULL;
    CHECKF(dlinfo(self, RTLD_DI_LINKMAP, &map) == 0 && map != NULL && map->l_name != NULL, "dlinfo: %s",
           dlerror());
    /* ... from the install's library directory (not the cargo build tree). */
    char got[PATH_MAX], want[PATH_MAX], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", map->l_name);
    char *slash = strrchr(dir, '/');
    CHECKF(slash != NULL, "loaded from \"%s\", not a path", map->l_name);
    *slash = '\0';
    CHECKF(realpath(dir, got) != NULL && realpath(GGVK_EXPECT_LIBDIR, want) != NULL, "realpath(%s, %s)", dir,
           GGVK_EXPECT_LIBDIR);
    CHECKF(strcmp(got, want) == 0, "libggvk loaded from %s, expected the install's %s", got, want);
    CHECKF(strcmp(slash + 1, soname) == 0, "loaded as %s, expected the soname %s", slash + 1, soname);

    printf("ggvk %s (header %s), loaded from %s\n", v, expect, map->l_name);
    dlclose(self);
    return 0;
}
