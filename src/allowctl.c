/*
 * allowctl.c - the administration tool's entry point; see src/cli/cli.c.
 */
#include "allowd/cli.h"

int main(int argc, char **argv)
{
	return allowd_cli_main(argc, argv, stdout, stderr);
}
