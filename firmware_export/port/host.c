/* Host / Linux (incl. aarch64 under qemu-user) port: stdio output and process exit status. */
#include <stdio.h>
#include <stdlib.h>

#include "ee_port.h"

void ee_port_write(const char *s)
{
    fputs(s, stdout);
}

void ee_port_exit(int code)
{
    fflush(stdout);
    exit(code);
}
