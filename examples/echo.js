// The smallest Cloister program: returns its input unchanged.
export default function (input) {
  return input;
}
