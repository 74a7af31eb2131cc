/*
 * webpage.c - the live dashboard's page (manager/webpage.html: HTML, CSS
 * and JavaScript in one file) assembled into the binary, so that
 * distmgr --web needs no file at run time and cannot serve a stale one.
 *
 * Nothing else belongs here. The page must never load anything from
 * elsewhere (reporter-web.c's Content-Security-Policy forbids it) and
 * must put test output into the page only as text, never as markup.
 */
#include "common.h"
#include "manager.h"

/* The path is relative to the top of the tree, where make runs the
 * compiler; the Makefile names the page as a dependency of this file. */
__asm__(
"	.section .rodata\n"
"	.global web_page_html\n"
"	.type web_page_html, @object\n"
"	.balign 16\n"
"web_page_html:\n"
"	.incbin \"manager/webpage.html\"\n"
"	.global web_page_html_end\n"
"	.type web_page_html_end, @object\n"
"web_page_html_end:\n"
"	.byte 0\n"
"	.previous\n");
