/*
 * LD_PRELOAD'ed by the lab's Wine test: delays the Unix exit of deno.exe's
 * process by 3 s, past the second after which Wine's server kills a process
 * whose last Windows thread has ended (what a loaded machine does at random).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__attribute__((destructor)) static void slow_exit(void)
{
    char command[4096] = { 0 };
    FILE *file = fopen("/proc/self/cmdline", "r");

    if (file == NULL) {
        return;
    }
    size_t length = fread(command, 1, sizeof command - 1, file);
    fclose(file);
    /* argv[0] only: Wine names a Windows process's Unix one after its .exe. */
    if (length > 0 && strstr(command, "deno-wine.exe") != NULL) {
        sleep(3);
    }
}
