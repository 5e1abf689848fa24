// aedes-persistence-level 9.x ships no types. It exports one CommonJS
// factory that wraps an async LevelDB persistence in aedes-persistence's
// CallBackPersistence; called without callbacks, every method returns a
// promise, which is what aedes 1.x uses.
declare module 'aedes-persistence-level' {
  /** The persistence object aedes takes as its `persistence` option. */
  interface LevelPersistence {
    setup(broker: unknown): Promise<void>;
    /** Closes the level database it was given. */
    destroy(): Promise<void>;
  }
  function createLevelPersistence(db: object): LevelPersistence;
  export = createLevelPersistence;
}
