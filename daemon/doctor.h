/* facetd --doctor: checks the virtual-camera set-up (v4l2loopback loaded,
 * its devices, exclusive_caps, access rights, the cameras and their
 * formats) and prints each problem with the command that fixes it. */
#ifndef FACETD_DOCTOR_H
#define FACETD_DOCTOR_H

#include <stdio.h>

/* Writes the report to out; returns the number of problems found. */
int doctor_run(FILE *out);

#endif
