/** FSO's version, reported in agent status. */
export const FSO_VERSION = '0.1.0';
