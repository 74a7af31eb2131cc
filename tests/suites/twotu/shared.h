/* shared.h - what the two translation units of twotu share. */
int	twice(int);
