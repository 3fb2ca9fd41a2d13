// A trivial activity that proves a worker, its task queue and the server talk to each other.
export function createSmokeActivities() {
  return {
    echo(message: string): Promise<string> {
      return Promise.resolve(message);
    },
  };
}

export type SmokeActivities = ReturnType<typeof createSmokeActivities>;
